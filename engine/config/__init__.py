"""What the user asked for: experiments.toml -> validated run specs, schedules, model
presets, cluster settings, and where in the file each field is. No torch."""
