"""Typed, validated Kubernetes objects loaded from manifests (layer 1 of DESIGN.md)."""
