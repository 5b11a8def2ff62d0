"""What a trait's vectors are worth: evaluation against labelled data, the detection cards that record it,
and the bootstrap intervals both use."""
