"""The named search spaces, as data (one YAML file each). A package only so that an installed copy carries the files:
study.spaces reads them through importlib.resources."""
