"""Qt-free orchestration shared by the CLI and the GUI."""
