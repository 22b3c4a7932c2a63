"""The local dev stack: `dopomoga up`, the demo, the supervisor, the embedded broker, the watcher,
the registry emulator and the synthetic registry. Never deployed; production runs each deployable alone."""
