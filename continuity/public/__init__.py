"""What customers see from the daemon without logging in: the website banner (/banner.json and the
/banner.js embed), the status page (/status, /status.json) and the phone announcement (/voice.xml).

Everything here only reads the store and the daemon's health; nothing changes state.
"""
