"""The core every layer may import: errors, atomic files and the cache root, the registries,
the run config and its presets, what this machine runs fast, the version."""
