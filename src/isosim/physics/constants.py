"""Physical constants and unit conversions used by every model."""

#: Molar gas constant, J mol^-1 K^-1 (CODATA 2018, exact).
R_GAS = 8.314462618
#: Kelvin offset of the Celsius scale.
ZERO_C = 273.15
#: Seconds in a million Julian years (365.25 d), the unit of geological cooling rates.
SECONDS_PER_MYR = 1e6 * 365.25 * 86400.0
