# Replaces PyInstaller's own hook for Pygments, which bundles every lexer, formatter and style (~400 modules,
# ~5 MB). Pygments comes in only because superqt.utils (the app's thread_worker) imports its code-highlighting
# widget; the app never highlights code, so the modules Python imports statically are all it needs.
hiddenimports = []
