"""The pipeline's stages, in order, each one module with one entry function:

    load.load / export.export        NIR file <-> float network (artifacts.network)
    discretize.discretize            float network -> discrete network (artifacts.discrete)
    quantize.quantize                discrete network -> quantized network
    place.place                      integer network -> placement
    compile.compile_network          float network -> bundle (the three above, plus timing)
    stimulus.load_stimulus           data selection -> stimulus (artifacts.stimulus)
    verify.compare_spikes / judge    bundle + stimulus -> comparison -> verdict (artifacts.verdict)
    energy.estimate                  bundle + spike record -> energy and latency
    tolerances.load_tolerances       options and files -> tolerances
"""
