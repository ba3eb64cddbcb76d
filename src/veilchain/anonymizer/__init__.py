"""veilchain.anonymizer"""
