"""Renderers of analysis results: json, csv, table, dot, md, summary. Pure: text out."""
