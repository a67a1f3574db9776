"""The generic actor runtime: one single-threaded actor per id, activation, hibernation, alarms."""
