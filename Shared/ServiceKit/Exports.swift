// Every service reads its deployment's configuration: importing ServiceKit brings it.
@_exported import DubanConfig
@_exported import Trust
