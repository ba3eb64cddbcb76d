"""veilchain.platform"""
