"""Kinetic Task interop at load time: importing tree and routine exports, translating their ERB."""
