"""Campaign models arrive with the authoring and dispatch issues."""
