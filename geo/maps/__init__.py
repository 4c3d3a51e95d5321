"""Maps for the command centre and planners: heatmaps, city density, offline assets."""
