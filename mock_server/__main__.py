from ivh_mock.commands import mock

raise SystemExit(mock())
