"""Deployment files of Mishards and the code that renders the generated ones."""
