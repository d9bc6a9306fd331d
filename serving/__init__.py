"""TF Serving side of polyvit_tf: client, local PredictionService stand-in, configs."""
