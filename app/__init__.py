"""chm-api: the back end of a biodiversity Clearing-House Mechanism."""

__version__ = "0.1.0"
