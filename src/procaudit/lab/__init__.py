"""The lab: a model of Windows hosts served over a real WinRM/PSRP endpoint on loopback.

It is both the test estate and the demo. Everything it returns is labelled as lab output.
"""
