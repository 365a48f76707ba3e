"""The shop front: a simulated store that answers what the platform serves (the closed loop).

The shop sits outside the DAG, as a real one would. For day D it reads what the platform published for D-1 (the
Parquet exports the read API serves): each customer's recommended list and the replenishment plan. Customers
answer through the simulator's latent truth (tastes, price sensitivity); purchase orders arrive after their lead
time; demand beyond stock is lost and logged. :mod:`ml.shop.front` is the closed-loop store, :mod:`ml.shop.lists`
the reference lists (oracle, random) that bound what a recommender can earn there. The experiment split the
shop records comes with each list from the platform (:mod:`ml.recommend.experiment`).
"""
