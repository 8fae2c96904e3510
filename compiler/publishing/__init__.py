"""Publishing: the compiled tree against the Argo CD repository, as a pull request."""
