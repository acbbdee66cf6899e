"""The float models a deployment is verified against: the continuous-time closed form, the discrete-time
float simulation of the chip's schedule, and that simulation exported as ONNX."""
