"""Test helpers shared by the server-venv suite (tests/) and the clients-venv suite (tests_clients/)."""
