# The Strata silo for NVIDIA GPUs: `docker build -f docker/silo-gpu.Dockerfile -t strata-silo-gpu .`; run it with the
# NVIDIA Container Toolkit (docker run --gpus all, or the device reservation in docker-compose.yml) and --device cuda:0.
#
# Why a second image: ONNX Runtime 1.31's CUDA execution provider (libonnxruntime_providers_cuda.so, from
# Microsoft.ML.OnnxRuntime.Gpu.Linux) is linked against the CUDA 13 runtime (libcudart.so.13, libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10) and loads cuDNN 9 at run time. Microsoft's .NET images carry none of these, and
# without them the provider fails to load and the silo falls back to the CPU (with a logged warning). So this image
# starts from NVIDIA's CUDA 13 runtime image with cuDNN (Ubuntu 24.04) and adds the .NET 10 runtime, copied from
# Microsoft's Ubuntu 24.04 runtime image. The GPU driver itself (libcuda.so.1) comes from the host through the
# container toolkit. Override CUDA_IMAGE to pin another CUDA 13.x patch release.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files alone (see silo.Dockerfile).
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Strata.Contracts/Strata.Contracts.csproj src/Strata.Contracts/
COPY src/Strata.Models/Strata.Models.csproj src/Strata.Models/
COPY src/Strata.Engine/Strata.Engine.csproj src/Strata.Engine/
COPY src/Strata.Grains/Strata.Grains.csproj src/Strata.Grains/
COPY src/Strata.Hosting/Strata.Hosting.csproj src/Strata.Hosting/
COPY silos/Strata.Silo/Strata.Silo.csproj silos/Strata.Silo/
RUN dotnet restore silos/Strata.Silo/Strata.Silo.csproj
COPY src/ src/
COPY silos/ silos/
# TensorRT is not used (and its libraries are not in the base image); the CUDA provider stays.
RUN dotnet publish silos/Strata.Silo/Strata.Silo.csproj -c Release --no-restore -o /app \
 && rm -f /app/libonnxruntime_providers_tensorrt.so

FROM mcr.microsoft.com/dotnet/runtime:10.0-noble AS dotnet

FROM ${CUDA_IMAGE}
# What .NET needs on Ubuntu 24.04 beyond the CUDA image (no ICU: Strata runs with invariant globalization).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3t64 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_ROOT=/usr/share/dotnet DOTNET_RUNNING_IN_CONTAINER=true DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=true
WORKDIR /app
COPY --from=build /app ./
COPY docker/silo-entrypoint.sh /usr/local/bin/strata-silo
RUN chmod 755 /usr/local/bin/strata-silo && mkdir -p /models
ENV STRATA__Strata__ModelStore=/models
EXPOSE 11111 30000
ENTRYPOINT ["strata-silo"]
CMD ["--device", "cuda:0"]
