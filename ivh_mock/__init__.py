"""ivh-mock: a faithful local mock, typed client and contract suite for the IVH photo-to-video API.

The parts: `ivh_mock.spec` (the contract), `ivh_mock.mock_server` (the mock), `ivh_mock.client` (the client and the
`ivh` command) and `ivh_mock.contract_tests` (the target-agnostic suite). In a checkout they are the top-level
folders of the same names.
"""

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
