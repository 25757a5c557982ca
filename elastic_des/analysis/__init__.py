"""What is made of runs once they are done: decision forensics and
counterfactual replay, the HTML report and its plots, sweep aggregation and
the 2×2 ablation. Reads the engine's results; the engine never reads this."""
