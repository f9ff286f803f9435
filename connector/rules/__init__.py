"""The school's rules as pure functions: plain data in (events, a compact history, plan settings, a clock reading),
effects out. No Flask, no Redis, no HTTP in this package, so every rule can be read in one screen and tested alone."""
