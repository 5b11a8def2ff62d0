"""Everything that reads a scan folder: the console summary, gates, CI outputs, merging shards, filtering
datasets and the HTML report. Nothing here imports torch."""
