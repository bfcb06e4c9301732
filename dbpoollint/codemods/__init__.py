"""One codemod per kind of fix; `dbpoollint.fixing` maps fix requests onto them."""
