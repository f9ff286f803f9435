"""Configuration: tenants, their adapters, directory, calendar and plan settings, loaded and checked from YAML.

Owns the configuration file's schema and the objects it loads into (``schema``: ``Config``, ``Tenant``,
``check_config``) and secret references (``secrets``: ``{env: NAME}`` / ``{file: path}``, read only when needed).

May import: the contract, the rules (a plan's settings are the rules' own schemas) and the adapters (each adapter
type checks its own settings). Never the engine, the store or the door.
"""
