"""Feedback from the shop front: what ops see of the served lists' impressions and of the demand stock lost."""
