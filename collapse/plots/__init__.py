"""Figures (matplotlib, Agg, files only): `style` (the one writer, units, grid, styles), `curves`,
`distributions` and `heatmaps`."""
