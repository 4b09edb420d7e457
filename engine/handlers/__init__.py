"""The plugin API: what a node handler declares and receives, and the registry that holds them."""
