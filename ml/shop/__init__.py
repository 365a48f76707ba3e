"""The shop front: a simulated store that answers what the platform serves (the closed loop).

The shop sits outside the DAG, as a real one would. For day D it reads what the platform published for D-1 (the
Parquet exports the read API serves): each customer's recommended list and the replenishment plan. Customers
answer through the simulator's latent truth (tastes, price sensitivity); purchase orders arrive after their lead
time; demand beyond stock is lost and logged. :mod:`ml.shop.arms` holds the experiment split that the platform's
serving and the shop both use; :mod:`ml.shop.front` the closed-loop store itself.
"""
