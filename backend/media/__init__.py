"""Media: where video, poster and upload files live, how they are streamed and signed."""
