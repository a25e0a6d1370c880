"""One module per verb. A verb imports the domain, never another verb."""
