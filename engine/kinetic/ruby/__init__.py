"""Kinetic's Ruby (ERB parameters, connector conditions) translated to treeflow's Jinja.

``tokens`` reads Ruby, ``parser`` turns an expression into Jinja text, ``bindings`` places each
``@`` binding in treeflow's scope and ``templates`` handles statements, ERB tags and control
flow. ``engine.kinetic.erb`` is the interface the importer (and its report) use.
"""
