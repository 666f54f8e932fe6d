"""The atlas entries, one module per topic; `tfdl.atlas.catalog.TOPICS` lists them."""
