"""Exchange formats with the CHM network: offline bundles, import, mirroring."""
