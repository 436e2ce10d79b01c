"""ivh-mock: a faithful local mock, typed client and contract suite for the IVH photo-to-video API.

The parts: `ivh_mock.spec` (the contract), `ivh_mock.mock_server` (the mock), `ivh_mock.client` (the client and the
`ivh` command) and `ivh_mock.contract_tests` (the target-agnostic suite). In a checkout they are the top-level
folders of the same names.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ivh-mock")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
