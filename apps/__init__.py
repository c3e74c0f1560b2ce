"""Task apps, the app registry, the command line, run directories and configs."""
