"""The lending graph as arrays: the graph state (built in one pass or kept current write by write), its time-sorted adjacency, neighbour sampling and the time split."""

from gnn.data.lending_graph import GraphWrites, LendingGraph, id_keys
from gnn.data.loan_periods import LoanPeriods, loan_periods, term_pd
from gnn.data.temporal_adjacency import TemporalAdjacency
from gnn.data.neighbour_sampler import NeighbourSampler, SampledTrees, Seeds
from gnn.data.time_split import TimeSplit, application_targets

__all__ = [
    "GraphWrites",
    "LendingGraph",
    "LoanPeriods",
    "NeighbourSampler",
    "SampledTrees",
    "Seeds",
    "TemporalAdjacency",
    "TimeSplit",
    "application_targets",
    "id_keys",
    "loan_periods",
    "term_pd",
]
