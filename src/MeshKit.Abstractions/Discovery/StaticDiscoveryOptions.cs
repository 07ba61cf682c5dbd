namespace MeshKit.Discovery;
