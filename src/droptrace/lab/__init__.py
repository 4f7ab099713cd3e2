"""A private lab of network namespaces where well-known drops happen (`droptrace lab`, e2e tests)."""
from .netlab import A4, A6, A_MAC, B4, B6, B_MAC, GHOST4, IFNAME, OTHER_MAC, SPOOF4, Lab
from .scenarios import SCENARIOS, Scenario, by_name

__all__ = ["A4", "A6", "A_MAC", "B4", "B6", "B_MAC", "GHOST4", "IFNAME", "OTHER_MAC", "SPOOF4", "Lab",
           "SCENARIOS", "Scenario", "by_name"]
