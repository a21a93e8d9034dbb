"""Configuration: YAML with line numbers, strict pydantic models, `${ENV}` secrets, the loader.

Import from the submodules (`continuity.config.loader`, `continuity.config.models`): this package
stays empty so that models can be imported by probes and sinks without pulling in the loader.
"""
