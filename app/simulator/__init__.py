"""Local stand-ins for the vendors' APIs (`printhook simulate ...`), also used by the tests."""
