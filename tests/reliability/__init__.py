"""Standing reliability suites: crashes (SIGKILL at seeded points) and faults (every emulator
fault switch on for whole runs), each ending in an exact end state. See RELIABILITY.md."""
