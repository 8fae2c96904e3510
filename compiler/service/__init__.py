"""`serve`: the compiler as a long-running service (issue 21).

Triggers (the provisioner's HTTP call, DynamoDB Streams, a slow safety-net poll)
go into one bounded queue (`triggers`); the actor (`actor`) coalesces what one
debounce window brings into one compile and one pull request, but only while it
holds the table's lease (`lease`), so two replicas never publish twice. The HTTP
front (`http`) serves the trigger endpoint, health and `/metrics` (`metrics`).
"""
