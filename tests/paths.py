"""Where the tests find the repository, their own data files and ../shared/data, wherever a test file sits."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEST_DATA = TESTS / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
