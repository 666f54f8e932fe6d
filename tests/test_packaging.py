"""`pip install .` (not editable) must carry every package and data file: an editable install hides a missing one."""

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# setup.cfg's package_dir: where each installed package's files live in the repository.
FOLDERS = {"tfdl": "tfdl", "tfdl.configs": "configs", "tfdl.pipelines": "pipelines", "tfdl.export": "export",
           "tfdl.serving": "serving"}


def _setup() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _package_of(folder: Path) -> str:
    relative = folder.relative_to(ROOT)
    for package, root in sorted(FOLDERS.items(), key=lambda item: -len(item[1])):
        if relative.parts[: len(Path(root).parts)] == Path(root).parts:
            return ".".join([package, *relative.parts[len(Path(root).parts):]])
    raise AssertionError(f"{relative} is outside every package folder")


def test_every_package_folder_is_installed():
    listed = set(_setup()["options"]["packages"].split())
    found = {_package_of(init.parent) for root in set(FOLDERS.values()) for init in (ROOT / root).rglob("__init__.py")
             if "__pycache__" not in init.parts}
    assert found - listed == set(), "add these to setup.cfg [options] packages"


def test_every_shipped_data_file_is_package_data():
    patterns = [p.strip() for p in _setup()["options.package_data"]["tfdl.configs"].split(",")]
    shipped = [path.relative_to(ROOT / "configs").as_posix() for path in (ROOT / "configs").rglob("*")
               if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts]
    missing = [name for name in shipped if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert shipped and missing == [], "add these to setup.cfg [options.package_data] tfdl.configs"
