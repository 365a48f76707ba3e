"""Smart display: products understood from their text (:mod:`ml.search.encoder`, :mod:`ml.search.lexical`) and
ranked for a query and a customer (:mod:`ml.search.ranker`)."""
